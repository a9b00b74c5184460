"""Execution-feedback rewards: a score for each of a question's candidate responses (stage II).

Every candidate is judged by its task (:meth:`trice.tasks.Task.judge`: its tool call executed, or
its direct answer read) and compared with the gold response, the first candidate. Two indicators
place a non-gold candidate in a *state*:

* correct answer: ``True`` / ``False`` (``Judgement.correct``);
* tool use consistent with the gold response: ``Yes`` when ``used_tool`` equals the gold's, else ``No``.

A candidate whose judgement has no prediction at all (``Judgement.prediction is None``: a malformed
or failing tool call, or, for math, a text without a number) is in the state ``no-prediction``.

Strategies (``REWARD_STRATEGIES``; add one with :func:`register_reward`):

``paper`` (default) -- the paper's rule, one fixed level per state, so equal states always score
equally and a ``True-Yes`` candidate ties with the gold::

    gold 20, True-Yes 20, True-No 15, False-Yes 10, False-No 5, no-prediction 0

``original`` -- the released code's ``get_score`` (generate_data/score.py), applied to all non-gold
candidates together. Levels are ``20, 15, 10, 5, 0``:

1. the gold gets 20; a candidate without a prediction gets 0;
2. a correct candidate gets 20 when its tool use matches the gold's, else 15; if any correct
   candidate got 15, the wrong ones start at 10, otherwise at 15 (so a wrong answer can score as
   high as a correct one that mis-used the tool: that is the released behaviour);
3. wrong candidates, for ``math``: ordered by the distance of their number to the gold answer
   (both rounded to 2 decimals; the nearest gold answer when there are several; an unreadable
   number or gold is infinitely far), the nearest at the start level, each *distinct* larger
   distance one level lower, never below 5. Equal distances share a level (the released code
   breaks such ties by candidate order, which would score equal states differently; with its 3
   scored candidates it never went below 5 either);
4. wrong candidates, other tasks: all at the start level.

The released code also fixed the second candidate's correctness by assumption (it was the teacher's
tool call); here every candidate is judged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from trice.tasks import Judgement, get_task
from trice.core.tools import ToolRegistry
from trice.core.call_format import TEXT, CallFormat
from trice.tools.calculator import parse_number

GOLD = "gold"
NO_PREDICTION = "no-prediction"
STATES = (GOLD, "True-Yes", "True-No", "False-Yes", "False-No", NO_PREDICTION)

# A strategy maps the judged candidates of one question to one score each.
RewardFn = Callable[..., list[float]]  # fn(judgements, gold_index=0, *, task_name, answers) -> scores

LEVELS = (20.0, 15.0, 10.0, 5.0, 0.0)
PAPER_SCORES = {GOLD: 20.0, "True-Yes": 20.0, "True-No": 15.0, "False-Yes": 10.0, "False-No": 5.0, NO_PREDICTION: 0.0}
_LOWEST_WRONG_LEVEL = 3  # index of 5 in LEVELS: the original never scores a wrong number below 5


class RewardOutage(RuntimeError):
    """A reward whose judging met the machine's failure (a tool or its server did not answer a call,
    or a reading of its output was not made): ``count`` of ``total`` responses, ``first`` the first
    why. An online trainer makes no reward of it, since a zero would teach the policy that the call
    was wrong; it stops instead, its checkpoints kept, and a rerun resumes from the last one."""

    def __init__(self, count: int, total: int, first: str):
        self.count, self.total, self.first = count, total, first
        super().__init__(f"{count} of {total} rollout responses met a tool outage while rewarded (first: {first})")


def response_state(judgement: Judgement, gold: Judgement) -> str:
    """``True-Yes`` .. ``False-No`` for a judged candidate against the gold, or ``no-prediction``."""
    if judgement.prediction is None:
        return NO_PREDICTION
    return f"{judgement.correct}-{'Yes' if judgement.used_tool == gold.used_tool else 'No'}"


def response_states(judgements: Sequence[Judgement], gold_index: int = 0) -> list[str]:
    """The state of every candidate, ``gold`` for the gold itself."""
    gold = judgements[gold_index]
    return [GOLD if i == gold_index else response_state(j, gold) for i, j in enumerate(judgements)]


def paper_scores(judgements: Sequence[Judgement], gold_index: int = 0, *, task_name: str = "math", answers: Sequence[str] = ()) -> list[float]:
    """One fixed level per state (:data:`PAPER_SCORES`); the task and answers play no part."""
    return [PAPER_SCORES[s] for s in response_states(judgements, gold_index)]


def _distance(prediction: str, answers: Sequence[str]) -> float:
    value = parse_number(prediction)
    golds = [g for g in (parse_number(a) for a in answers) if g is not None]
    if value is None or not golds:
        return math.inf
    return min(abs(round(value, 2) - round(g, 2)) for g in golds)


def original_scores(judgements: Sequence[Judgement], gold_index: int = 0, *, task_name: str = "math", answers: Sequence[str] = ()) -> list[float]:
    """The released code's ``get_score`` over all non-gold candidates (rules in the module docstring)."""
    gold = judgements[gold_index]
    scores = [0.0] * len(judgements)
    wrong: list[int] = []
    start = 1
    for i, j in enumerate(judgements):
        if i == gold_index:
            scores[i] = LEVELS[0]
        elif j.prediction is None:
            scores[i] = LEVELS[-1]
        elif j.correct:
            scores[i] = LEVELS[0] if j.used_tool == gold.used_tool else LEVELS[1]
            if j.used_tool != gold.used_tool:
                start = 2
        else:
            wrong.append(i)
    if task_name == "math":
        distance = {i: _distance(judgements[i].prediction, answers) for i in wrong}  # type: ignore[arg-type]
        rank = {d: r for r, d in enumerate(sorted(set(distance.values())))}
        for i in wrong:
            scores[i] = LEVELS[min(start + rank[distance[i]], _LOWEST_WRONG_LEVEL)]
    else:
        for i in wrong:
            scores[i] = LEVELS[start]
    return scores


REWARD_STRATEGIES: dict[str, RewardFn] = {"paper": paper_scores, "original": original_scores}


def register_reward(name: str, fn: RewardFn) -> RewardFn:
    """Add a strategy ``fn(judgements, gold_index=0, *, task_name, answers) -> list[float]``.

    A name already taken is refused, so a plug-in cannot silently change what ``paper`` means.
    """
    if not callable(fn):
        raise TypeError(f"reward strategy {name!r} must be callable, got {type(fn).__name__}")
    if name in REWARD_STRATEGIES:
        raise ValueError(f"reward strategy {name!r} is already registered")
    REWARD_STRATEGIES[name] = fn
    return fn


def get_reward(name: str) -> RewardFn:
    if name not in REWARD_STRATEGIES:
        raise ValueError(f"unknown reward strategy {name!r}; known strategies: {', '.join(REWARD_STRATEGIES)}")
    return REWARD_STRATEGIES[name]


def score_judgements(judgements: Sequence[Judgement], task_name: str, answers: Sequence[str], strategy: str = "paper", gold_index: int = 0) -> list[float]:
    """Scores from a strategy, checked to be one finite number per candidate."""
    scores = [float(s) for s in get_reward(strategy)(judgements, gold_index, task_name=task_name, answers=answers)]
    if len(scores) != len(judgements) or not all(math.isfinite(s) for s in scores):
        raise ValueError(f"reward strategy {strategy!r} returned {scores!r} for {len(judgements)} candidates")
    return scores


def score_responses(
    task_name: str, responses: Sequence[str], answers: Sequence[str], strategy: str = "paper", registry: ToolRegistry | None = None, calls: CallFormat = TEXT
) -> tuple[list[str | None], list[float], list[Judgement]]:
    """Judge and score one question's candidates; ``responses[0]`` is the gold response.

    ``registry`` lets a caller reuse one set of tools across questions (default: the task's own);
    ``calls``: the format the responses write their calls in.
    Returns the predictions, the scores and the judgements, one each per response.
    """
    if not responses:
        raise ValueError("score_responses needs at least the gold response")
    task = get_task(task_name)
    registry = registry if registry is not None else task.registry()
    judgements = [task.judge(r, answers, registry, calls=calls) for r in responses]
    scores = score_judgements(judgements, task_name, answers, strategy)
    return [j.prediction for j in judgements], scores, judgements
