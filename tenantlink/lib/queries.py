"""Query helpers for the hottest paths."""


def delete_rows(queryset):
    """Delete the rows of `queryset` with one DELETE statement and return how many went.

    For rows nothing refers to and no signal watches (sessions, pending Microsoft flows),
    QuerySet.delete() comes to the same statement but wraps it in a transaction: two more round
    trips to the database, on every sign-in."""
    return queryset._raw_delete(queryset.db)
