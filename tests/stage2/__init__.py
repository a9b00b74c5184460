"""trice.stage2: candidates, scores, rewards, the RLEF loss and training, DPO (stage II)."""
