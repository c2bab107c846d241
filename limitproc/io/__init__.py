"""File formats: reading problems and raw data, writing results, graphs, tables and sweep rows."""
