"""``trice run``: a recipe (plan) becomes stages laid out in one run directory (layout), each setting
looked up in one registry (settings, trainers); the stages (steps, evals) run resumably with
fingerprints (stages, runner) and stop on the machine's failures, never scoring them as the model's
(failures), and the report (report, stage_two_report, plots, intervals) compares the settings.
"""
