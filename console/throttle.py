"""Login throttling that a stranger cannot turn into a lockout of the ward.

Two limits, in memory per console process (a restart forgets them):

- **Per address**, across accounts: ``failures`` failed logins from one client address within
  ``window_s`` and that address is refused until its oldest failure leaves the window. One
  machine can neither guess one password nor spray a common one over every account.
- **Per account**, a back-off instead of a lockout: after ``backoff_after`` failures in a row,
  an attempt on that account *from an address that has itself failed* must come ``backoff_s``
  after the account's last failure, doubling with each further failure up to ``backoff_max_s``.
  An address without failures is never held back, so a nurse logs in from her own device while
  a stranger is hammering her account elsewhere. A success ends the account's back-off.

The client address is whatever the server saw: the connection's peer, or a trusted proxy's
``X-Forwarded-For`` (``ConsoleSettings.trusted_proxies``), never a header from anybody else.
A refused attempt is not checked against the password and does not count as a failure.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_KEYS = 50_000  # addresses or account names remembered before the stale ones are pruned


@dataclass
class _Account:
    failures: int = 0  # in a row
    last: float = 0.0


@dataclass
class LoginThrottle:
    failures: int
    window_s: float
    backoff_after: int
    backoff_s: float
    backoff_max_s: float
    clock: Callable[[], float] = time.monotonic
    _addresses: dict[str, deque[float]] = field(default_factory=dict, init=False, repr=False)
    _accounts: dict[str, _Account] = field(default_factory=dict, init=False, repr=False)

    def wait(self, address: str, account: str) -> float:
        """0 when this attempt may be checked; else the seconds until it may be."""
        now = self.clock()
        recent = self._recent(address, now) if address in self._addresses else deque()
        if len(recent) >= self.failures:
            return recent[0] + self.window_s - now
        state = self._accounts.get(account)
        if not recent or state is None or state.failures < self.backoff_after:
            return 0.0
        delay = self.backoff_s * 2 ** min(state.failures - self.backoff_after, 40)
        return max(0.0, state.last + min(delay, self.backoff_max_s) - now)

    def failed(self, address: str, account: str) -> None:
        now = self.clock()
        if len(self._addresses) >= MAX_KEYS or len(self._accounts) >= MAX_KEYS:
            self._prune(now)
        self._recent(address, now).append(now)
        state = self._accounts.setdefault(account, _Account())
        state.failures += 1
        state.last = now

    def succeeded(self, account: str) -> None:
        self._accounts.pop(account, None)

    def _recent(self, address: str, now: float) -> deque[float]:
        window = self._addresses.setdefault(address, deque())
        while window and window[0] <= now - self.window_s:
            window.popleft()
        return window

    def _prune(self, now: float) -> None:
        """Forget what no longer holds anybody back."""
        for address in [
            a for a, w in self._addresses.items() if not w or w[-1] <= now - self.window_s
        ]:
            del self._addresses[address]
        stale = now - self.backoff_max_s - self.window_s
        for account in [a for a, s in self._accounts.items() if s.last <= stale]:
            del self._accounts[account]
