"""The parameterised SQL builder of searches (kept in :mod:`app.search_types.sql`, which the
search-type modules share)."""

from app.search_types.sql import MAX_ARGS, Args, all_of, any_of, escape_like, like_prefix

__all__ = ["MAX_ARGS", "Args", "all_of", "any_of", "escape_like", "like_prefix"]
