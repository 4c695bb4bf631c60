from rest_framework.pagination import CursorPagination


class StableCursorPagination(CursorPagination):
    """Cursor pagination in primary-key order: stable under inserts (api.md, Conventions)."""

    ordering = "pk"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000

    def _get_position_from_instance(self, instance, ordering):
        if isinstance(instance, tuple):  # a values_list row of trials.api.rows: the pk comes first
            return str(instance[0])
        return super()._get_position_from_instance(instance, ordering)
