"""The map page, offline: Leaflet from the ``xstatic-leaflet`` package, the
coastline shipped in ``aiswatch/data/coastline.geojson`` (Natural Earth), no
CDN and no tile server.

``/map?token=aw_...`` checks the token, keeps it in an HttpOnly cookie and
drops it from the address; the page then reads the API with the cookie.
``/map`` takes ``vessel``, ``since`` and ``until`` for the track it shows.
The static files (Leaflet, the page's script, the coastline) hold no data
and need no token.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import xstatic.pkg.leaflet
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from aiswatch.api import COOKIE, require_token
from aiswatch.areas import port_zones
from storage.tokens import check_token

STATIC = Path(str(resources.files("aiswatch").joinpath("static")))
COASTLINE = Path(str(resources.files("aiswatch").joinpath("data", "coastline.geojson")))


def zones_geojson(path: Path | None) -> dict[str, Any]:
    features = [
        {"type": "Feature", "geometry": geometry.__geo_interface__,
         "properties": {"port": port, "zone": zone, "watched": bool(props.get("watched", True))}}
        for port, parts in port_zones(path).items()
        for zone, props, geometry in parts
    ]  # fmt: skip
    return {"type": "FeatureCollection", "features": features}


def mount_map(app: FastAPI) -> None:
    app.mount("/static/leaflet", StaticFiles(directory=xstatic.pkg.leaflet.BASE_DIR), name="leaflet")
    app.mount("/static/map", StaticFiles(directory=STATIC), name="map")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/static/coastline.geojson", include_in_schema=False)
    async def coastline() -> FileResponse:
        return FileResponse(COASTLINE, media_type="application/geo+json")

    @app.get("/api/v1/zones", summary="The port zones (GeoJSON)", dependencies=[Depends(require_token)])
    async def zones(request: Request) -> JSONResponse:
        return JSONResponse(zones_geojson(request.app.state.settings.detectors.zones))

    @app.get("/map", summary="The map page", response_class=HTMLResponse)
    async def map_page(request: Request) -> Response:
        token = request.query_params.get("token")
        if token is not None:
            async with request.app.state.reads.connection() as conn:
                valid = await check_token(conn, token)
            if valid is None:
                raise HTTPException(401, "that token is not valid (see `aiswatch api token create`)")
            rest = {k: v for k, v in request.query_params.items() if k != "token"}
            response = RedirectResponse("/map" + (f"?{urlencode(rest)}" if rest else ""), status_code=303)
            response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/")
            return response
        await require_token(request)
        return HTMLResponse((STATIC / "map.html").read_text(encoding="utf-8"))
