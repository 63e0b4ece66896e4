"""The native REST API, one module per resource."""
