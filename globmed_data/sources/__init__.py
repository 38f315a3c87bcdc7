"""Source connectors: file readers, the Hub connector, field mapping and format presets."""
