"""Where a generated response is over, so generation can stop there and the rest be cut.

A TRICE response is one tool call (``calculator(48+48/2)``) or one answer. What a model writes after
its call is never read: the judge executes the *first* call of the task's tool and ignores the rest
(:meth:`trice.tasks.Task.execute`), yet left alone a model goes on until ``max_new_tokens``
(``calculator(3*3*7-12-5) Below is an instruction that ...``), which costs generation time and is
text that stage II would then train on. A :class:`StopRule` says where a response ends:

* where the model starts a new prompt of its own (:data:`STOP_MARKERS`; the text from there on is
  cut, with or without ``tools``: :func:`clean_response`);
* with ``tools``, just after the first complete call of one of them, the call as the judge's own
  parser finds it: :func:`trice.core.tools.call_end` for the paper's text calls,
  :func:`trice.core.native.native_call_end` for the model's native ones (its ``calls`` format).

Generation may stop as soon as a rule says a row is over (:class:`trice.generation.decode.StopWhenOver`, a
per-row ``StoppingCriteria``), and :meth:`StopRule.finish` then makes the same response as a run that went on
to the token limit and was cut afterwards: both conditions, once met, stay met however the text goes
on, and the cut point is in the text already made. The judgement of the cut response equals that of
the uncut one, because a call's argument ends at its balancing parenthesis and nothing after the
first call is judged.

Plain text functions, no torch: the labelling code uses them too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from trice.core.call_format import TEXT, CallFormat

# Where a base model trained on no particular template keeps going after its answer: cut there.
STOP_MARKERS = ("\n### Instruction", "\n### Input", "\n### Response", "\n\n\n")


def clean_response(text: str, markers: Sequence[str] = STOP_MARKERS) -> str:
    """Cut a response at the first marker where the model starts a new prompt of its own."""
    cut = min((i for i in (text.find(m) for m in markers) if i >= 0), default=len(text))
    return text[:cut].strip()


@dataclass(frozen=True)
class StopRule:
    """Where one prompt's response ends: at a marker, or after the first complete call of ``tools``
    written in the ``calls`` format."""

    tools: tuple[str, ...] = ()
    markers: tuple[str, ...] = STOP_MARKERS
    calls: CallFormat = TEXT

    def over(self, text: str) -> bool:
        """Whether ``text`` (the raw generation so far) already holds the whole response."""
        return any(m in text for m in self.markers) or (bool(self.tools) and self.calls.end(text, self.tools) is not None)

    def finish(self, text: str) -> str:
        """The response in ``text``: cut at the first marker, then just after the first complete call."""
        text = clean_response(text, self.markers)
        end = self.calls.end(text, self.tools) if self.tools else None
        return text if end is None else text[:end]
