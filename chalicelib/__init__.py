"""API domain code packaged with the Chalice app (Lambda). Nothing here imports host-only libraries."""
