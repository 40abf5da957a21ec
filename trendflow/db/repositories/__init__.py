"""Repositories: async functions over an asyncpg connection, keyword-only, raising domain errors.

One module per aggregate: :mod:`.users` (users, API tokens), :mod:`.videos`, :mod:`.runs` (the
queue), :mod:`.components` (run components, artifacts), :mod:`.profiles`, :mod:`.catalog`
(resource requirements, pricing). The SQL of each lives in its module.
"""
