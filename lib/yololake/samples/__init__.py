"""Generators of sample inputs for the demo, the tests and the benchmarks: a data lake (`lake`), videos (`videos`)."""
