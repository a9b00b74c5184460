"""TRICE stage II, reinforcement learning with execution feedback: k candidate responses per question
(sources, candidates), scored by executing them (score, reward), trained with the rank loss plus SFT
(rlef_loss, rlef_forward, rlef_config, train_rlef) or with DPO (dpo_config, train_dpo); or online,
by GRPO on the policy's own rollouts rewarded by executing them (grpo_config, grpo_rollouts,
grpo_reward, train_grpo); the checkpoint chosen on a dev set (select_checkpoint).
"""
