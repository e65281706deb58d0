"""Benchmarks and tools outside the runtime packages. A regular package, not a namespace one: pysbd (a
medspacy dependency) installs a top-level `benchmarks` package that would otherwise shadow this folder."""
