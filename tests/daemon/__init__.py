"""Tests of feedsvc.daemon: the service and the scheduler in this process."""
