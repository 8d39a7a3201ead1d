"""Async views: Django runs them on the event loop, not in a thread."""

from django.http import JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt


async def hello(request, n):
    return JsonResponse({"n": n, "method": request.method, "q": request.GET.get("q"), "async": True})


@csrf_exempt
async def echo(request):
    body = request.body
    return JsonResponse({"length": len(body), "type": request.content_type})


async def stream(request):
    async def parts():
        for i in range(3):
            yield "django part %d\n" % i

    return StreamingHttpResponse(parts(), content_type="text/plain")
