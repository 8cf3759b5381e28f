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
