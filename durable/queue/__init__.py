"""Workers: claim runnable executions, run them, keep claims alive, recover the dead."""
