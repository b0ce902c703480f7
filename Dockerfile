# The consumer image for docker-compose.yml: the wheel, installed as a deployment installs it (the SQL under
# sql/ travels inside it), with no source tree in the final image.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY consumer ./consumer
COPY schemas ./schemas
COPY sql ./sql
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
COPY --from=build /wheels /tmp/wheels
RUN pip install --no-cache-dir /tmp/wheels/*.whl && rm -rf /tmp/wheels
USER nobody
EXPOSE 9108
ENTRYPOINT []
CMD ["ocpp-consumer", "run"]
