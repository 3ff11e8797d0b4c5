"""Runs every @test in tests/integration/test_*.py and prints one line per
test and a closing "integration: N passed, M failed". Arguments filter tests
by substring of their name."""
import glob
import importlib
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    for path in sorted(glob.glob(os.path.join(here, "test_*.py"))):
        importlib.import_module(os.path.basename(path)[:-3])
    wanted = sys.argv[1:]
    passed = failed = 0
    for fn in harness.TESTS:
        name = f"{fn.__module__}.{fn.__name__}"
        if wanted and not any(w in name for w in wanted):
            continue
        start = time.time()
        try:
            fn()
            passed += 1
            print(f"ok   {name} ({time.time() - start:.2f}s)", flush=True)
        except Exception as e:  # noqa: BLE001 - every failure is reported
            failed += 1
            print(f"FAIL {name}: {e}", flush=True)
            if not isinstance(e, harness.Failure):
                traceback.print_exc()
    try:
        rc = harness.stop_shared()
        if rc != 0:
            failed += 1
            print(f"FAIL shared server exited {rc} on SIGTERM")
    except Exception as e:  # noqa: BLE001
        failed += 1
        print(f"FAIL shared server: {e}")
    print(f"integration: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
