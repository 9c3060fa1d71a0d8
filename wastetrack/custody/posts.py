"""Single posts recorded together (group commit).

A post on its own would pay for a whole recording transaction: BEGIN, the read that locks its
batch, the write, the roll-up step, COMMIT. Instead each worker queues its single posts, and one
flush at a time records everything queued in one transaction (`recorder.record_posts`): what
arrives meanwhile waits for the next flush. There is no timer: a post that finds the queue idle
is recorded at once, so batching comes only from load.

Each post is judged alone: a refusal is that post's result and changes nothing. A flush that
fails as a whole (a deadlock, a full identifier sequence, a missing partition of the log, a
resend recorded meanwhile through another worker) is tried once more with each post in a
transaction of its own, a lone post too, so no post fails for its neighbours and none is
recorded twice. A post is answered only after the commit that holds it. One flush at a time:
a post that waits for a batch's lock (held by a sync, or by another worker's flush) holds up
the posts queued behind it in its worker."""

import asyncio
import contextvars
from dataclasses import dataclass, field

from wastetrack.core import db, observability
from wastetrack.core.errors import ServiceUnavailable
from wastetrack.core.principal import Principal
from wastetrack.custody import recorder
from wastetrack.custody.commands import EventCommand

MAX_PER_FLUSH = 64
"""Posts recorded in one transaction at most; the rest wait for the next flush."""


@dataclass
class _Post:
    principal: Principal
    submission: EventCommand
    answer: asyncio.Future[recorder.Recorded] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def settle(self, outcome: recorder.Recorded | BaseException) -> None:
        if self.answer.done():  # its request was cancelled: the phone will resend
            return
        if isinstance(outcome, BaseException):
            self.answer.set_exception(outcome)
        else:
            self.answer.set_result(outcome)


class PostQueue:
    """One worker's queue of single posts and its flush."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self._waiting: list[_Post] = []
        self._flushing = False
        self._in_flight: list[_Post] = []
        self._flush_task: asyncio.Task[None] | None = None  # held: the loop keeps weak ones

    async def record(self, *, principal: Principal, submission: EventCommand) -> recorder.Recorded:
        """Record one post with whatever else is waiting; its own outcome, once committed."""
        post = _Post(principal, submission)
        self._waiting.append(post)
        if not self._flushing:
            self._flushing = True
            # A context of its own: the flush serves many requests, and must not carry the
            # first one's log context.
            self._flush_task = asyncio.get_running_loop().create_task(
                self._flush(), context=contextvars.Context()
            )
            self._flush_task.add_done_callback(self._flushed)
        return await post.answer

    async def _flush(self) -> None:
        while self._waiting:
            posts = self._waiting[:MAX_PER_FLUSH]
            del self._waiting[:MAX_PER_FLUSH]
            self._in_flight = posts
            await self._record(posts, retry=True)
        # No await since the queue was found empty: a post arriving from now on starts the
        # next flush.
        self._in_flight = []
        self._flushing = False

    def _flushed(self, task: asyncio.Task[None]) -> None:
        """A flush that did not end normally (cancelled when the worker stops, even before it
        began) leaves nobody waiting, and the next post starts a flush."""
        if task.cancelled() or task.exception() is not None:
            stopped = ServiceUnavailable("the service is stopping; send the event again")
            for post in [*self._in_flight, *self._waiting]:
                post.settle(stopped)
            self._in_flight, self._waiting = [], []
            self._flushing = False

    async def _record(self, posts: list[_Post], *, retry: bool) -> None:
        try:
            async with db.transaction():
                outcomes = await recorder.record_posts(
                    [(post.principal, post.submission) for post in posts], secret=self.secret
                )
        except Exception as error:
            if not retry:
                posts[0].settle(error)
                return
            # Once more, each alone: none fails for its neighbours, and a lone post meets a
            # deadlock or a concurrent resend's commit no more than once.
            for post in posts:
                await self._record([post], retry=False)
            return
        for post, outcome in zip(posts, outcomes, strict=True):
            post.settle(outcome)


async def record_one(
    queue: PostQueue, *, principal: Principal, submission: EventCommand
) -> recorder.Recorded:
    """Record one single post through the worker's queue; a refusal or a conflicting resend
    raises its error (logged and counted in the post's own request)."""
    principal.check_may_write()  # before queueing: it is the poster's, not the flush's
    outcome = await queue.record(principal=principal, submission=submission)
    observability.posted_results("event", [outcome.result])
    if outcome.error is not None:
        raise outcome.error
    return outcome
