"""The crash drill's pieces (docs/drill.md): supervisor (processes and stores), fuzzer (malformed
requests) and verifier (the checks, shared with scripts/bench-report.py); the buyers are
sale-load --scenario drill. Their unit tests: python3 -m unittest discover -s scripts/drilllib."""
