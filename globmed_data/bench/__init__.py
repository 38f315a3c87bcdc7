"""The benchmark flow's parts (docs/benchmark.md): dataset versions in, models scored per task
and language through lm-evaluation-harness, results and the high/low-resource gap in the
warehouse. prompts.py is shared with training."""
