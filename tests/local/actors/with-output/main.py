"""Declares an output schema; writes nothing, so the run object alone carries `output`."""
print("done")
