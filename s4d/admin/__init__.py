"""Everything served that is not the S3 API: health now; admin API, stats, metrics later."""
