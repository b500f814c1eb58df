"""Exit 0 when the PostgreSQL of DATABASE_URL (and the Redis of REDIS_URL, if set) answer."""
import os
import sys

import psycopg
import redis

try:
    url = os.environ["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, connect_timeout=5) as conn:
        conn.execute("SELECT 1")
    if os.environ.get("REDIS_URL"):
        redis.Redis.from_url(os.environ["REDIS_URL"], socket_connect_timeout=5).ping()
except Exception as exc:  # any failure to reach a service is the same answer
    print(f"service check failed: {exc}", file=sys.stderr)
    sys.exit(1)
