"""The API's JSON renderer: DRF's, which also writes pages whose rows are JSON texts already."""
from rest_framework import renderers

from .json_rows import JsonRowsPage


class JSONRenderer(renderers.JSONRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):
        if not isinstance(data, JsonRowsPage):
            return super().render(data, accepted_media_type, renderer_context)
        if self.get_indent(accepted_media_type, renderer_context or {}):  # pretty-printed on request
            return super().render(data.parsed(), accepted_media_type, renderer_context)
        envelope = super().render({k: v for k, v in data.items() if k != "results"}, accepted_media_type, renderer_context)
        # as DRF's renderer does for the rest of the page: U+2028/2029 escaped for JavaScript
        rows = ",".join(data["results"].texts).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
        return envelope[:-1] + b',"results":[' + rows.encode() + b"]}"
