from django import forms
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt


def hello(request):
    return HttpResponse("Hello from Django on %s %s" % (request.method, request.path))


class NameForm(forms.Form):
    name = forms.CharField(max_length=50)
    age = forms.IntegerField(min_value=0)


@csrf_exempt
def form(request):
    if request.method == "POST":
        f = NameForm(request.POST)
        if f.is_valid():
            return JsonResponse({"ok": True, "name": f.cleaned_data["name"], "age": f.cleaned_data["age"]})
        return JsonResponse({"ok": False, "errors": sorted(f.errors)}, status=400)
    return HttpResponse('<form method="post">%s<input type="submit"></form>' % NameForm().as_p())
