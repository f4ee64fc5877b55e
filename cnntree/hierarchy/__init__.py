"""The hierarchies family: hierarchies suggested from a flat model's confusions, and specs compared
under one budget."""
