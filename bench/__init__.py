"""Benchmarks of agentkit and their recorded results (``bench/results``)."""
