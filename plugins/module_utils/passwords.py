# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mailops.mailstack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Password hashes in Dovecot's ``{SCHEME}hash`` form, computed with passlib.

Costs default to what ``doveadm pw -s SCHEME`` writes with Dovecot 2.3
(checked against Debian 12's dovecot-core 2.3.19):

- SHA512-CRYPT, SHA256-CRYPT: 5000 rounds (``$6$salt$...``; passlib's own
  default is 656000, over 100 times slower);
- BLF-CRYPT: cost 5 (``$2y$05$...``);
- ARGON2ID: t=3, m=65536 KiB, p=1 (needs the argon2-cffi package).

Bulk hashing spreads the work over the machine's cores with a fork pool.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import re
import traceback
import warnings

PASSLIB_IMP_ERR = None
try:
    with warnings.catch_warnings():
        # passlib imports the stdlib crypt module, deprecated in Python 3.11
        warnings.simplefilter('ignore', DeprecationWarning)
        from passlib.hash import sha512_crypt, sha256_crypt, bcrypt, argon2
        from passlib.exc import MissingBackendError
    HAS_PASSLIB = True
except ImportError:
    HAS_PASSLIB = False
    PASSLIB_IMP_ERR = traceback.format_exc()

SCHEMES = ('SHA512-CRYPT', 'SHA256-CRYPT', 'BLF-CRYPT', 'ARGON2ID')
DEFAULT_SCHEME = 'SHA512-CRYPT'
DEFAULT_COST = {'SHA512-CRYPT': 5000, 'SHA256-CRYPT': 5000, 'BLF-CRYPT': 5, 'ARGON2ID': 3}
COST_RANGE = {'SHA512-CRYPT': (1000, 999999999), 'SHA256-CRYPT': (1000, 999999999),
              'BLF-CRYPT': (4, 31), 'ARGON2ID': (1, 1000)}
ARGON2_MEMORY_KIB = 65536
ARGON2_PARALLELISM = 1

_PREFIX_RE = re.compile(r'^\{([A-Z0-9][A-Z0-9._-]*)\}(.*)$', re.S | re.I)
# Below this many items a pool costs more than it saves.
POOL_THRESHOLD = 16
POOL_CHUNK = 64


def argon2_available():
    if not HAS_PASSLIB:
        return False
    try:
        with warnings.catch_warnings():
            # passlib 1.7.4 reads argon2.__version__, deprecated by argon2-cffi 23.1+
            warnings.simplefilter('ignore', DeprecationWarning)
            argon2.get_backend()
        return True
    except MissingBackendError:
        return False


def available_schemes():
    return tuple(s for s in SCHEMES if s != 'ARGON2ID' or argon2_available())


def check_scheme(scheme, cost=None):
    """Validate scheme and cost; return the effective cost. Raises ValueError."""
    if scheme not in SCHEMES:
        raise ValueError('unsupported scheme %r (supported: %s)' % (scheme, ', '.join(SCHEMES)))
    if scheme == 'ARGON2ID' and not argon2_available():
        raise ValueError('scheme ARGON2ID needs the argon2-cffi Python package on the target')
    if cost is None:
        return DEFAULT_COST[scheme]
    lo, hi = COST_RANGE[scheme]
    if isinstance(cost, bool) or not isinstance(cost, int) or not lo <= cost <= hi:
        raise ValueError('rounds for %s must be an integer from %d to %d, got %r' % (scheme, lo, hi, cost))
    return cost


_HANDLERS = {}


def handler(scheme, cost):
    """A passlib handler configured for scheme and cost (cached)."""
    key = (scheme, cost)
    h = _HANDLERS.get(key)
    if h is None:
        if scheme == 'SHA512-CRYPT':
            h = sha512_crypt.using(rounds=cost)
        elif scheme == 'SHA256-CRYPT':
            h = sha256_crypt.using(rounds=cost)
        elif scheme == 'BLF-CRYPT':
            h = bcrypt.using(rounds=cost, ident='2y')
        elif scheme == 'ARGON2ID':
            h = argon2.using(type='ID', rounds=cost, memory_cost=ARGON2_MEMORY_KIB,
                             parallelism=ARGON2_PARALLELISM)
        else:
            raise ValueError('unsupported scheme %r' % scheme)
        _HANDLERS[key] = h
    return h


def hash_password(password, scheme=DEFAULT_SCHEME, cost=None):
    """``{SCHEME}hash`` of password."""
    cost = check_scheme(scheme, cost)
    return '{%s}%s' % (scheme, handler(scheme, cost).hash(password))


def split_hash(stored):
    """(SCHEME, hash) of a stored value; the scheme is guessed from the hash
    when the ``{SCHEME}`` prefix is missing; (None, stored) when unknown."""
    if stored is None:
        return None, None
    m = _PREFIX_RE.match(stored)
    if m:
        return m.group(1).upper(), m.group(2)
    if stored.startswith('$6$'):
        return 'SHA512-CRYPT', stored
    if stored.startswith('$5$'):
        return 'SHA256-CRYPT', stored
    if stored[:4] in ('$2y$', '$2b$', '$2a$'):
        return 'BLF-CRYPT', stored
    if stored.startswith('$argon2id$'):
        return 'ARGON2ID', stored
    return None, stored


def hash_cost(scheme, raw):
    """The cost parameter encoded in a hash, or None if unparsable."""
    try:
        if scheme in ('SHA512-CRYPT', 'SHA256-CRYPT'):
            m = re.match(r'^\$[56]\$rounds=([0-9]+)\$', raw)
            return int(m.group(1)) if m else 5000
        if scheme == 'BLF-CRYPT':
            return int(raw.split('$')[2])
        if scheme == 'ARGON2ID':
            m = re.search(r'\$m=([0-9]+),t=([0-9]+),p=([0-9]+)\$', raw)
            if not m or int(m.group(1)) != ARGON2_MEMORY_KIB or int(m.group(3)) != ARGON2_PARALLELISM:
                return None
            return int(m.group(2))
    except (ValueError, IndexError, AttributeError):
        return None
    return None


def verify_password(password, stored):
    """True when password matches the stored hash (any supported scheme)."""
    scheme, raw = split_hash(stored)
    if scheme not in SCHEMES or (scheme == 'ARGON2ID' and not argon2_available()):
        return False
    h = {'SHA512-CRYPT': sha512_crypt, 'SHA256-CRYPT': sha256_crypt,
         'BLF-CRYPT': bcrypt, 'ARGON2ID': argon2}[scheme]
    try:
        return bool(h.verify(password, raw))
    except (ValueError, TypeError):
        return False


def password_is_current(password, stored, scheme, cost):
    """True when the stored hash is of password, in scheme, at cost: nothing to rewrite.

    Costs one hash computation (the verification) when scheme and cost match.
    """
    s_scheme, raw = split_hash(stored)
    if s_scheme != scheme or hash_cost(scheme, raw) != cost:
        return False
    return verify_password(password, stored)


# --- bulk, across cores -------------------------------------------------

def _hash_job(job):
    password, scheme, cost = job
    return '{%s}%s' % (scheme, handler(scheme, cost).hash(password))


def _verify_job(job):
    password, stored, scheme, cost = job
    return password_is_current(password, stored, scheme, cost)


def _hash_chunk(jobs):
    return [_hash_job(j) for j in jobs]


def _verify_chunk(jobs):
    return [_verify_job(j) for j in jobs]


def cpu_count():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _pool(workers):
    import multiprocessing
    try:
        ctx = multiprocessing.get_context('fork')
    except ValueError:
        ctx = multiprocessing.get_context()
    return ctx.Pool(workers)


def _chunked(iterable, size):
    chunk = []
    for item in iterable:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _run_many(func_chunk, jobs, count, workers, chunk_size):
    """Yield results of func_chunk over jobs, in order, using up to workers processes."""
    if workers is None or workers <= 0:
        workers = cpu_count()
    workers = min(workers, max(1, count // 2))
    if workers <= 1 or count < POOL_THRESHOLD:
        for chunk in _chunked(jobs, chunk_size):
            yield from func_chunk(chunk)
        return
    pool = _pool(workers)
    try:
        for results in pool.imap(func_chunk, _chunked(jobs, chunk_size)):
            yield from results
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()


def hash_many(jobs, count, workers=0, chunk_size=POOL_CHUNK):
    """Yield ``{SCHEME}hash`` for each (password, scheme, cost) job, in order.

    ``jobs`` may be a generator; ``count`` is its length (decides the pool size).
    """
    return _run_many(_hash_chunk, jobs, count, workers, chunk_size)


def verify_many(jobs, count, workers=0, chunk_size=POOL_CHUNK):
    """Yield password_is_current() for each (password, stored, scheme, cost) job, in order."""
    return _run_many(_verify_chunk, jobs, count, workers, chunk_size)
