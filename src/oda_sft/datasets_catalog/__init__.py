"""The 17 long-CoT catalog datasets: their records, declared conversions and public evidence.

The model presets and the recipe's values are in oda_sft.presets; this package holds what `oda-sft data add
<catalog name>` fetches and how it converts it (records.py), the record types (schema.py), and what public
sources show of each dataset's schema and of ODA's choice (evidence.toml, read by evidence.py).
"""

from oda_sft.datasets_catalog.records import DATASETS
from oda_sft.datasets_catalog.schema import CatalogDataset, Conversion, Evidence

__all__ = ["DATASETS", "CatalogDataset", "Conversion", "Evidence"]
