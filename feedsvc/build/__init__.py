"""One build as named phases: scan → parse → settle → render → write, its memory between builds
and its report."""
