"""python benchmarks/throughput.py [--data PATH] [--out FILE.md] ...: see rnnlab.benchmark."""

from rnnlab.benchmark import main

if __name__ == "__main__":
    raise SystemExit(main())
