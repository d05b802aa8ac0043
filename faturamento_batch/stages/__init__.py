"""The stages of a run, in the order `pipeline` calls them (DESIGN §2, §8):

- `import_stage`: extract → transform → diff, chunk by chunk, every part spilled
  (no database write: the writes are replayable from the spills);
- `stock_stage`: the stock stage's plan (§9) over what the import will leave;
- `write_run`: every data write of the run, from the spills and the plan, in the
  run's one transaction (optionally leaving out a set of NFs: quarantine, §12).
"""
