"""Example feature definitions used by the demo job, the notebooks and the conf/ definitions."""
