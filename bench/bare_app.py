"""The baseline for the server benchmark: FastAPI answering /invocations with a fixed JSON body."""

from fastapi import FastAPI, Request, Response

from serving.environment import Settings
from serving.worker import Supervisor

BODY = (
    b'{"userId":"u001","recommendations":[{"videoId":"v005","score":0.91},{"videoId":"v017","score":0.87},'
    b'{"videoId":"v002","score":0.85},{"videoId":"v101","score":0.8},{"videoId":"v044","score":0.79},'
    b'{"videoId":"v009","score":0.75},{"videoId":"v011","score":0.7},{"videoId":"v012","score":0.69},'
    b'{"videoId":"v013","score":0.6},{"videoId":"v014","score":0.5}]}'
)

app = FastAPI()


@app.get("/ping")
async def ping() -> Response:
    return Response(b'{"status":"ready"}', media_type="application/json")


@app.post("/invocations")
async def invocations(request: Request) -> Response:
    await request.body()
    return Response(BODY, media_type="application/json")


class BareSupervisor(Supervisor):
    """serve.py's exact process model and settings, serving the fixed-body app instead."""

    def load(self) -> FastAPI:
        return app


if __name__ == "__main__":
    BareSupervisor(Settings.from_env()).run()
