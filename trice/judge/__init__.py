"""Judging responses: execute each response's tool call, let the model read a tool output again
where the task needs it (reading), and score the prediction against the gold answers (evaluate).
"""
