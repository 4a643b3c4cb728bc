// bench_ort.js - ONNX Runtime's side of make bench-compare (Node,
// onnxruntime-node); run by tools/bench_compare.py, not by make test.
//
//   node tools/bench_ort.js MODEL.onnx THREADS shape BxT MIN_SECONDS
//       random ids, every token attended: one warm-up batch, then batches
//       until MIN_SECONDS have passed (at least 3); prints sentences/s
//   node tools/bench_ort.js MODEL.onnx THREADS job IDS.json BATCH
//       the sentence-transformers way of embedding a list of sentences:
//       ids (a JSON array of token-id arrays, tokenized beforehand, not
//       timed) sorted by length, cut into batches of BATCH, each padded to
//       its longest; one warm-up batch, then the whole list once; prints
//       sentences/s
//
// With BENCH_CPU_TIME=1 in the environment, time is the process's CPU time
// (user + system, every thread) instead of wall time.
//
// The model (tools/bench_compare.py exports it) takes input_ids,
// attention_mask and token_type_ids (int64 [B,T]) and returns the
// normalised CLS embedding [B,H].  One session, intra-op threads THREADS,
// inter-op 1, every graph optimisation on.
'use strict';
const ort = require('onnxruntime-node');

function feeds(rows, T) {
  const B = rows.length, n = B * T;
  const ids = new BigInt64Array(n), mask = new BigInt64Array(n);
  rows.forEach((r, i) => r.forEach((v, t) => {
    ids[i * T + t] = BigInt(v);
    mask[i * T + t] = 1n;
  }));
  return {
    input_ids: new ort.Tensor('int64', ids, [B, T]),
    attention_mask: new ort.Tensor('int64', mask, [B, T]),
    token_type_ids: new ort.Tensor('int64', new BigInt64Array(n), [B, T]),
  };
}

async function main() {
  const [model, threads, mode, arg, arg2] = process.argv.slice(2);
  if (!model || !['shape', 'job'].includes(mode)) {
    console.error('usage: bench_ort.js MODEL.onnx THREADS shape BxT MIN_SECONDS | job IDS.json BATCH');
    process.exit(2);
  }
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: Number(threads), interOpNumThreads: 1,
    graphOptimizationLevel: 'all', executionMode: 'sequential',
  });
  const now = process.env.BENCH_CPU_TIME === '1'
    ? () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; }
    : () => Number(process.hrtime.bigint()) / 1e9;
  if (mode === 'shape') {
    const [B, T] = arg.split('x').map(Number);
    const rows = [];
    for (let i = 0; i < B; i++)
      rows.push(Array.from({ length: T }, (_, t) => 1000 + ((i * T + t) * 7919) % 29000));
    const f = feeds(rows, T);
    await session.run(f);
    let n = 0;
    const t0 = now();
    while (n < 3 || now() - t0 < Number(arg2)) {
      await session.run(f);
      n++;
    }
    console.log((B * n / (now() - t0)).toFixed(2));
    return;
  }
  const all = JSON.parse(require('fs').readFileSync(arg, 'utf8'));
  const order = all.map((r, i) => i).sort((a, b) => all[a].length - all[b].length || a - b);
  const B = Number(arg2), batches = [];
  for (let s = 0; s < order.length; s += B) {
    const rows = order.slice(s, s + B).map((i) => all[i]);
    batches.push(feeds(rows, Math.max(...rows.map((r) => r.length))));
  }
  await session.run(batches[batches.length - 1]);
  const t0 = now();
  for (const f of batches)
    await session.run(f);
  console.log((all.length / (now() - t0)).toFixed(2));
}

main().catch((e) => { console.error('bench_ort.js: ' + e.message); process.exit(1); });
