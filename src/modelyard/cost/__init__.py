"""Cost control: the price catalog, the ledger, budgets, quotas and the estimator."""

from modelyard.cost.prices import (
    PriceCatalog,
    catalog_path,
    default_catalog,
    load_catalog,
    parse_catalog,
)

__all__ = ["PriceCatalog", "catalog_path", "default_catalog", "load_catalog", "parse_catalog"]
