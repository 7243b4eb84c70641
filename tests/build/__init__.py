"""Tests of feedsvc.build: the builder, its parallel parse, posts rendered for feeds."""
