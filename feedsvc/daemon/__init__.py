"""`feedsvc run`: the service, its scheduled jobs and watcher, and leadership among daemons."""
