"""Hardware, instance and model catalogues (YAML package data) and their loader."""

from aicap.hardware_db.loader import Catalogue, catalogue_dirs_from_env, load_catalogue

__all__ = ["Catalogue", "catalogue_dirs_from_env", "load_catalogue"]
