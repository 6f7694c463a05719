"""The operator dashboard at ``/`` of ``tactful serve``: server-rendered HTML and SVG charts,
no JavaScript build and nothing fetched from the network (see docs/dashboard.md)."""
