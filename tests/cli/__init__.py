"""Tests of feedsvc.cli: the commands through click's runner and a subprocess."""
