# The consumer image for docker-compose.yml. The SQL under sql/ is read from the source tree at run time,
# so the project is installed in place (editable) rather than as a bare wheel.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY consumer ./consumer
COPY schemas ./schemas
COPY sql ./sql
RUN pip install --no-cache-dir -e .
USER nobody
EXPOSE 9108
ENTRYPOINT []
CMD ["ocpp-consumer", "run"]
