# helper.bash - loaded by every Bats file: bats-support, bats-assert, and
# the freshly built programs first on PATH (build/, or build-san/ for
# make test SANITIZE=1, as tests/run.sh passes MTL_BUILD).
bats_require_minimum_version 1.5.0
load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

MTL_ROOT=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
PATH="$MTL_ROOT/${MTL_BUILD:-build}:$PATH"
FIXTURES=$MTL_ROOT/fixtures
SHARED=$MTL_ROOT/../shared

# skip_without_shared: skips the test, saying why, when ../shared is absent.
skip_without_shared() {
	[ -d "$SHARED/tokref" ] || skip "../shared is absent (reference material)"
}
