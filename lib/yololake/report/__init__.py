"""`yololake report OUT`: charts and preview mosaics of a built dataset (`main`; pictures in `draw`, page in `html`)."""
