// "Hiện mật khẩu": a box after each password field shows what was typed (progressive
// enhancement; without JavaScript the fields stay as they are).
(function () {
  var fields = document.querySelectorAll('input[type=password]');
  for (var i = 0; i < fields.length; i++) {
    (function (field, n) {
      var label = document.createElement('label');
      label.className = 'check show-password';
      var box = document.createElement('input');
      box.type = 'checkbox';
      box.id = 'hien-mat-khau-' + n;
      box.addEventListener('change', function () {
        field.type = box.checked ? 'text' : 'password';
      });
      label.appendChild(box);
      label.appendChild(document.createTextNode(' Hiện mật khẩu'));
      var after = field.closest('label') || field;
      after.parentNode.insertBefore(label, after.nextSibling);
    })(fields[i], i);
  }
})();

// Addresses: choosing a province fills its wards from the API, and a box above the ward
// list keeps only the wards whose name holds what is typed (with or without marks).
// Without JavaScript the "Chọn tỉnh" button shows the province's wards instead.
(function () {
  function fold(s) {
    return s.normalize('NFD').replace(/[\u0300-\u036f]/g, '').replace(/đ/g, 'd').replace(/Đ/g, 'd').toLowerCase();
  }
  var provinces = document.querySelectorAll('select[data-wards]');
  for (var i = 0; i < provinces.length; i++) {
    (function (province) {
      var ward = document.getElementById(province.getAttribute('data-wards'));
      if (!ward) return;
      var step = document.querySelector('button[data-province-step]');
      if (step) step.remove();
      var all = [];
      function remember() {
        all = [];
        for (var j = 0; j < ward.options.length; j++) {
          if (ward.options[j].value) all.push([ward.options[j].value, ward.options[j].text]);
        }
      }
      function show(typed) {
        var want = fold(typed.trim());
        var chosen = ward.value;
        while (ward.options.length > 1) ward.remove(1);
        all.forEach(function (w) {
          if (!want || fold(w[1]).indexOf(want) >= 0) {
            var o = new Option(w[1], w[0]);
            if (w[0] === chosen) o.selected = true;
            ward.add(o);
          }
        });
      }
      var filter = document.createElement('input');
      filter.type = 'search';
      filter.placeholder = 'Gõ tên xã, phường để tìm nhanh';
      filter.setAttribute('aria-label', 'Tìm xã, phường');
      filter.className = 'ward-filter';
      var label = ward.closest('label') || ward;
      label.parentNode.insertBefore(filter, label);
      filter.addEventListener('input', function () { show(filter.value); });
      remember();
      province.addEventListener('change', function () {
        filter.value = '';
        while (ward.options.length > 1) ward.remove(1);
        if (!province.value) { all = []; return; }
        fetch('/api/v1/addresses/provinces/' + encodeURIComponent(province.value) + '/wards')
          .then(function (r) { return r.json(); })
          .then(function (list) {
            all = list.map(function (w) { return [w.code, w.name]; });
            show('');
          });
      });
    })(provinces[i]);
  }
})();
