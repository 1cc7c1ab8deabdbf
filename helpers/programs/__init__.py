"""The original's programs, written in Python: the course's reference solutions.

One module per task, named after the original's file: ``0-redis_client.js``
is :mod:`helpers.programs.t0_redis_client`, ``7-job_processor.js`` is
:mod:`helpers.programs.t7_job_processor`. Each is what a learner's file for
that task should do (``python -m helpers.check TASK --solution`` grades it),
and the one copy of that code: the modules the lessons use
(:mod:`helpers.client`, :mod:`helpers.schools`, ...) import from here.
"""
