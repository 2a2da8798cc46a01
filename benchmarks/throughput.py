"""python benchmarks/throughput.py [--data PATH] [--out FILE.md] ...: see rnnlab.tools.benchmark."""

from rnnlab.tools.benchmark import main

if __name__ == "__main__":
    raise SystemExit(main())
