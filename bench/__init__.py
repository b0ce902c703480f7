"""The benchmarks, run from the repository root as modules (`python -m bench.bench`, `python -m bench.store_bench`,
`python -m bench.decode_bench`), so that they import each other as `bench.<module>` without editing sys.path.
Not part of the service, and no test imports them."""
