#!/usr/bin/env bats
# mtl-report's embedding evaluators: labels (kNN, same-label retrieval,
# V-measure), --train, --qrels, --pairs; figures worked out by hand on six
# 2-d vectors, a tiny model's embeddings, and bad input.

load helper

setup() {
	cd "$BATS_TEST_TMPDIR"
}

# Six vectors in two bunches, a b c along x and d e f along y; c is
# labelled y, so one example sits in the other label's bunch.
six() {
	printf '%s\n' '{"type":"embedding","id":"a","labels":{"t":"x"},"embedding":[1,0]}' \
		'{"type":"embedding","id":"b","labels":{"t":"x"},"embedding":[0.9,0.1]}' \
		'{"type":"embedding","id":"c","labels":{"t":"y"},"embedding":[0.8,-0.1]}' \
		'{"type":"embedding","id":"d","labels":{"t":"y"},"embedding":[0,1]}' \
		'{"type":"embedding","id":"e","labels":{"t":"y"},"embedding":[0.1,0.9]}' \
		'{"type":"embedding","id":"f","labels":{"t":"y"},"embedding":[-0.1,0.8]}' | emb_stream 2 >six.mpk
}

@test "labels: kNN accuracy, same-label MRR and NDCG, V-measure, by hand" {
	six
	# kNN, k 1, leave-one-out: c's nearest is a (0.992 against b's 0.973),
	# so c is wrong and the rest right: 5/6.
	# same label: c ranks a b e d f, its first relevant (e) 3rd: RR 1/3, the
	# others 1: MRR (5 + 1/3)/6.  NDCG: c has d e f at ranks 4 3 5, d, e and f
	# their three at 1 2 5, a and b their one at 1:
	# (2 + (1/2 + 1/log2 5 + 1/log2 6)/I + 3 (1 + 1/log2 3 + 1/log2 6)/I)/6,
	# I = 1 + 1/log2 3 + 1/2: 0.9098.
	# k-means finds {a b c} {d e f}: against x = {a b}, y = {c d e f},
	# h = 1/2, c = 1 - H(K|C)/ln 2 = 0.4591, V 0.4787.
	run -0 mtl-report --knn 1 -n 2 six.mpk
	assert_line --regexp '^t \(2 labels\) +6  kNN accuracy, k 1, leave-one-out +0\.8333$'
	assert_line --regexp '^t, same label +6  MRR@10 +0\.8889$'
	assert_line --regexp '^t, same label +6  NDCG@10 +0\.9098$'
	assert_line --regexp '^t \(2 labels\) +6  k-means V-measure +0\.4787$'
	run -0 bats_pipe mtl-report -f json --knn 1 six.mpk \| jq -c '.embedding_evaluation.labels.t | [.labelled, .labels, .k, (.knn_accuracy * 1e4 | round), (.same_label.mrr10 * 1e4 | round), .probe_accuracy]'
	assert_output '[6,2,1,8333,8889,null]'
}

@test "--train: kNN and the probe against training embeddings, by label name" {
	six
	# training set: x along x, y along y, and z (a label the test set lacks)
	printf '%s\n' '{"type":"embedding","id":1,"labels":{"t":"y"},"embedding":[0,2]}' \
		'{"type":"embedding","id":2,"labels":{"t":"z"},"embedding":[-1,-1]}' \
		'{"type":"embedding","id":3,"labels":{"t":"x"},"embedding":[3,0]}' | emb_stream 2 >train.mpk
	# every test vector is nearest to its bunch's training vector: c (in
	# x's bunch, labelled y) alone is wrong, for kNN and for the probe
	run -0 mtl-report --train train.mpk --knn 1 -n 1 six.mpk
	assert_line --regexp '^t \(2 labels\) +6  kNN accuracy, k 1 +0\.8333$'
	assert_line --regexp '^t \(2 labels\) +6  probe accuracy +0\.8333$'
	printf '%s\n' '{"type":"embedding","id":1,"labels":{"u":"y"},"embedding":[0,2]}' | emb_stream 2 >other.mpk
	run -1 --separate-stderr mtl-report --train other.mpk six.mpk
	assert_equal "$stderr" "mtl-report: no training embedding is labelled for task 't'"
}

@test "--qrels: MRR@10, NDCG@10, Recall, MAP@100 by hand; a query without a relevant document" {
	six
	printf '%s\n' '{"type":"embedding","id":"q1","embedding":[1,0]}' \
		'{"type":"embedding","id":"q2","embedding":[0,1]}' \
		'{"type":"embedding","id":"q3","embedding":[1,1]}' | emb_stream 2 >q.mpk
	printf '%s\n' '{"query":"q1","doc":"b","relevance":2}' '{"query":"q1","doc":"c"}' '' \
		'{"query":"q2","doc":"f","relevance":1}' '{"query":"q3","doc":"a","relevance":0}' >qrels.jsonl
	# q1 ranks a b c e d f: b (2) 2nd, c (1) 3rd: RR 1/2,
	#   NDCG (2/log2 3 + 1/2)/(2 + 1/log2 3) = 0.6697, AP (1/2 + 2/3)/2
	# q2 ranks d e f b a c: f 3rd: RR 1/3, NDCG 1/2, AP 1/3
	# q3 has no relevant document: left out
	run -0 mtl-report --no-label-eval --queries q.mpk --qrels qrels.jsonl -n 1 six.mpk
	assert_line --regexp '^qrels.jsonl +2  MRR@10 +0\.4167$'
	assert_line --regexp '^qrels.jsonl +2  NDCG@10 +0\.5848$'
	assert_line --regexp '^qrels.jsonl +2  Recall@1 +0\.0000$'
	assert_line --regexp '^qrels.jsonl +2  Recall@10 +1\.0000$'
	assert_line --regexp '^qrels.jsonl +2  MAP@100 +0\.4583$'
	assert_line '1 judged queries without a relevant document left out'
	refute_line --partial 'kNN'
	run -0 bats_pipe mtl-report -f json --queries q.mpk --qrels qrels.jsonl six.mpk \| jq -c '.embedding_evaluation.retrieval | [.qrels, .queries, .figures.queries, .figures.skipped]'
	assert_output '["qrels.jsonl",3,2,1]'
}

@test "--pairs: Spearman with a tie, by hand" {
	six
	# cosines a-b 0.9939, a-d 0, d-e 0.9939 (a tie), c-f -0.246 against
	# scores 5 0 4 1: ranks (3.5 2 3.5 1) and (4 1 3 2): rho 3.5/sqrt(22.5)
	printf '%s\n' '{"a":"a","b":"b","score":5}' '{"a":"a","b":"d","score":0}' \
		'{"a":"d","b":"e","score":4}' '{"a":"c","b":"f","score":1.0}' >pairs.jsonl
	run -0 mtl-report --no-label-eval --pairs pairs.jsonl -n 1 six.mpk
	assert_line --regexp '^pairs.jsonl +4  Spearman +0\.7379$'
	assert_line --regexp '^pairs.jsonl +4  Pearson +0\.[0-9]{4}$'
}

@test "a tiny model: mtl-score --embed carries the gold labels, mtl-report evaluates them" {
	mtl-init -q -o m --vocab "$FIXTURES/demo/vocab.txt" --hidden 32 --heads 2 --layers 1 \
		--tasks "$FIXTURES/demo/tasks.json" --seed 5
	mtl-tokenize -q -m m "$FIXTURES/demo/dev.jsonl" >dev.mpk
	mtl-tokenize -q -m m "$FIXTURES/demo/train.jsonl" >train.mpk
	mtl-score -q -m m --embed dev.mpk >dev-emb.mpk
	mtl-score -q -m m --embed train.mpk >train-emb.mpk
	# as many labelled embeddings as topic-labelled examples; none for ner
	n=$(grep -c '"topic"' "$FIXTURES/demo/dev.jsonl")
	assert_equal "$(mtl-dump -t embedding dev-emb.mpk | grep -c '"labels":{"topic":')" "$n"
	run -0 bats_pipe mtl-report -f json --train train-emb.mpk dev-emb.mpk \| jq -c '.embedding_evaluation.labels | keys, (.topic | [.labelled, .labels, (.knn_accuracy >= 0 and .knn_accuracy <= 1), (.probe_accuracy >= 0), (.vmeasure >= 0)])'
	assert_line '["topic"]'
	assert_line "[$n,4,true,true,true]"
	# the same figures on every run and thread count
	mtl-report -f json -j 2 dev-emb.mpk >a.json
	mtl-report -f json dev-emb.mpk >b.json
	cmp a.json b.json
}

@test "bad input: an unknown id in qrels or pairs, bad JSON, a task without labels, usage" {
	six
	printf '%s\n' '{"type":"embedding","id":"q1","embedding":[1,0]}' | emb_stream 2 >q.mpk
	printf '%s\n' '{"query":"q1","doc":"a"}' '{"query":"q1","doc":"zz"}' >bad.jsonl
	run -1 --separate-stderr mtl-report --queries q.mpk --qrels bad.jsonl six.mpk
	assert_equal "$stderr" 'mtl-report: bad.jsonl: line 2: unknown corpus id "zz"'
	assert_output ''
	printf '%s\n' '{"query":"q9","doc":"a"}' >bad.jsonl
	run -1 --separate-stderr mtl-report --queries q.mpk --qrels bad.jsonl six.mpk
	assert_equal "$stderr" 'mtl-report: bad.jsonl: line 1: unknown query id "q9"'
	printf '%s\n' '{"a":"a","b":"b","score":1}' '{"a":"a","b":"b","score":"high"}' >p.jsonl
	run -1 --separate-stderr mtl-report --pairs p.jsonl six.mpk
	assert_equal "$stderr" 'mtl-report: p.jsonl: line 2: "score" is not a finite number'
	printf '%s\n' '{"a":"a",' >p.jsonl
	run -1 --separate-stderr mtl-report --pairs p.jsonl six.mpk
	assert_regex "$stderr" '^mtl-report: p.jsonl: line 1: '
	printf '%s\n' '{"type":"embedding","id":"q1","embedding":[1,0,0]}' | emb_stream 3 >q3.mpk
	printf '%s\n' '{"query":"q1","doc":"a"}' >ok.jsonl
	run -1 --separate-stderr mtl-report --queries q3.mpk --qrels ok.jsonl six.mpk
	assert_equal "$stderr" 'mtl-report: queries of dimension 3, corpus of dimension 2'
	run -1 --separate-stderr mtl-report --label-task nosuch six.mpk
	assert_equal "$stderr" "mtl-report: no embedding is labelled for task 'nosuch'"
	run -2 --separate-stderr mtl-report --qrels ok.jsonl six.mpk
	assert_regex "$stderr" '^mtl-report: --queries and --qrels go together'
	run -3 --separate-stderr mtl-report --pairs nosuch.jsonl six.mpk
	assert_regex "$stderr" "nosuch.jsonl"
	mtl-dump --pack "$MTL_ROOT/tests/data/hand.jsonl" >ex.mpk
	run -1 --separate-stderr mtl-report --train ex.mpk six.mpk
	assert_equal "$stderr" "mtl-report: ex.mpk: record 1: a stream of kind 'examples', expected 'embeddings'"
}
